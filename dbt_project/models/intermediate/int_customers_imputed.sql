{#- Remaining gaps filled as each column declares: the median (numbers), the most frequent
    value (ties to the alphabetically first, so runs are reproducible), a constant, or not
    at all. A column with no value at all has neither median nor mode: it takes its declared
    fallback, so it is constant, and the clustering step leaves it out. Ordered categories
    also get their rank (`<name>_level`). -#}
{%- set columns = attribute_columns() -%}

with

customers as (

    select * from {{ ref('int_customers_deduplicated') }}

),

medians as (

    select
        {%- for column in columns if column.impute == 'median' %}
        {{ median_of(column.name) }} as {{ column.name }},
        {%- endfor %}
        count(*) as customers

    from customers

),

{% for column in columns if column.impute == 'most_frequent' %}
{{ column.name }}_mode as (

    select {{ column.name }} as value
    from customers
    where {{ column.name }} is not null
    group by {{ column.name }}
    order by count(*) desc, {{ column.name }}
    limit 1

),

{% endfor %}
imputed as (

    select
        customers.customer_id,
        {%- for column in columns %}
        {%- if column.impute == 'median' %}
        {%- set filled = 'coalesce(customers.' ~ column.name ~ ', medians.' ~ column.name ~ ', ' ~ sql_constant(column.fallback, column) ~ ')' %}
        cast({{ 'round(' ~ filled ~ ')' if column.type == 'integer' else filled }} as {{ column_type(column) }}) as {{ column.name }},
        {%- elif column.impute == 'most_frequent' %}
        coalesce(customers.{{ column.name }}, (select value from {{ column.name }}_mode), {{ sql_constant(column.fallback, column) }})
            as {{ column.name }},
        {%- elif column.impute == 'constant' %}
        coalesce(customers.{{ column.name }}, {{ sql_constant(column.impute_value, column) }}) as {{ column.name }},
        {%- else %}
        customers.{{ column.name }},
        {%- endif %}
        {%- endfor %}
        {%- for column in columns if column.impute != 'none' %}
        customers.{{ column.name }} is null as is_{{ column.name }}_imputed,
        {%- endfor %}
        customers.records_merged,
        customers.source_row_number

    from customers
    cross join medians

),

ranked_levels as (

    select
        *
        {%- for column in columns if column.ordered %},
        case {{ column.name }}
            {%- for level in column.levels %}
            when {{ sql_string(level.value) }} then {{ loop.index0 }}
            {%- endfor %}
        end as {{ column.name }}_level
        {%- endfor %}

    from imputed

)

select * from ranked_levels
