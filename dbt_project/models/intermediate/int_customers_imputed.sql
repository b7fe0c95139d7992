with

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

spending_levels as (

    select * from {{ ref('spending_levels') }}

),

category_labels as (

    select * from {{ ref('category_labels') }}

),

{#- a column with no value at all has no median or mode: it takes this neutral value -#}
{% set fallback = var('empty_column_fallback', {'age': 40, 'work_experience': 0, 'family_size': 1}) %}
{% set labelled_columns = ['gender', 'profession', 'spending_score', 'var_1'] %}

fallback_labels as (

    select
        {% for column in labelled_columns %}
        min(label) filter (where column_name = '{{ column }}') as {{ column }}{{ "," if not loop.last }}
        {% endfor %}

    from category_labels

),

{#- the most frequent value; ties go to the alphabetically first, so runs are reproducible -#}
{% set categorical_columns = ['gender', 'ever_married', 'graduated', 'profession', 'spending_score', 'var_1'] %}

numeric_medians as (

    select
        coalesce(median(age), {{ fallback['age'] }}) as age,
        coalesce(median(work_experience), {{ fallback['work_experience'] }}) as work_experience,
        coalesce(median(family_size), {{ fallback['family_size'] }}) as family_size

    from customers

),

{% for column in categorical_columns %}
{{ column }}_mode as (

    select {{ column }} as value
    from customers
    where {{ column }} is not null
    group by {{ column }}
    order by count(*) desc, {{ column }}
    limit 1

),

{% endfor %}
imputed as (

    -- numbers: the median of the deduplicated base; categories and yes/no: the mode
    select
        customers.customer_id,
        coalesce(customers.gender, (select value from gender_mode), fallback_labels.gender) as gender,
        coalesce(customers.ever_married, (select value from ever_married_mode), false) as ever_married,
        cast(round(coalesce(customers.age, numeric_medians.age)) as integer) as age,
        coalesce(customers.graduated, (select value from graduated_mode), false) as graduated,
        coalesce(customers.profession, (select value from profession_mode), fallback_labels.profession) as profession,
        cast(round(coalesce(customers.work_experience, numeric_medians.work_experience)) as integer)
            as work_experience,
        coalesce(customers.spending_score, (select value from spending_score_mode), fallback_labels.spending_score) as spending_score,
        cast(round(coalesce(customers.family_size, numeric_medians.family_size)) as integer) as family_size,
        coalesce(customers.var_1, (select value from var_1_mode), fallback_labels.var_1) as var_1,
        customers.records_merged,
        customers.known_segment,
        customers.source_row_number,

        -- which values were filled in, for the data-quality report
        customers.gender is null as is_gender_imputed,
        customers.ever_married is null as is_ever_married_imputed,
        customers.age is null as is_age_imputed,
        customers.graduated is null as is_graduated_imputed,
        customers.profession is null as is_profession_imputed,
        customers.work_experience is null as is_work_experience_imputed,
        customers.spending_score is null as is_spending_score_imputed,
        customers.family_size is null as is_family_size_imputed,
        customers.var_1 is null as is_var_1_imputed

    from customers
    cross join numeric_medians
    cross join fallback_labels

),

with_levels as (

    select
        imputed.*,
        spending_levels.spending_level

    from imputed
    left join spending_levels
        on imputed.spending_score = spending_levels.spending_score

)

select * from with_levels
