with

validated as (

    select * from {{ ref('int_customers_validated') }}

),

quarantine as (

    select * from {{ ref('customer_quarantine') }}

),

customers as (

    select * from {{ ref('int_customers_imputed') }}

),

accounting as (

    select 'accounting' as section, 'rows_read' as item, count(*) as rows, 1 as item_order
    from validated
    union all
    select 'accounting', 'customers_kept', count(*), 2
    from customers
    union all
    select 'accounting', 'duplicate_records_merged', coalesce(sum(records_merged - 1), 0), 3
    from customers
    union all
    select 'accounting', 'rows_quarantined', count(*), 4
    from quarantine

),

quarantine_reasons as (

    select 'quarantine' as section, quarantine_reason as item, count(*) as rows, 10 as item_order
    from quarantine
    group by quarantine_reason

),

imputations as (

    select 'imputation' as section, column_name as item, imputed as rows, 20 as item_order
    from (
        select
            count_if(is_gender_imputed) as gender,
            count_if(is_ever_married_imputed) as ever_married,
            count_if(is_age_imputed) as age,
            count_if(is_graduated_imputed) as graduated,
            count_if(is_profession_imputed) as profession,
            count_if(is_work_experience_imputed) as work_experience,
            count_if(is_spending_score_imputed) as spending_score,
            count_if(is_family_size_imputed) as family_size,
            count_if(is_var_1_imputed) as var_1
        from customers
    ) unpivot (imputed for column_name in (*))

),

unioned as (

    select * from accounting
    union all
    select * from quarantine_reasons
    union all
    select * from imputations

),

final as (

    select
        section,
        item,
        cast(rows as bigint) as rows,
        row_number() over (order by item_order, rows desc, item) as display_order

    from unioned

)

select * from final
